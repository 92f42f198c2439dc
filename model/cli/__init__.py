"""The command-line front ends: drr-train (train.py), drr-eval (evaluate.py), drr-predict
(predict.py) and `python -m model.cli.export`. Each parses its flags and calls the library."""
