"""DRR, Deep Recurrent Regression for facial landmarks (Lai et al.): the network, its training,
evaluation and prediction. `model.predict.Predictor` is the front door for inference."""
