"""The files DRR Studio ships: default weights, the face detector model (with its licence), the
sample picture and the fixed validation split. Installed as the package `drr_resources`, so
that `model.resources.resource(name)` finds them in a checkout, an editable install and a wheel.
"""
