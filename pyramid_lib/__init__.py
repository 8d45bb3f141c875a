"""pyramid-ad: a tutorial and reproduction kit for "Image Anomaly Detection by aggregating deep
pyramidal representations" (Mishra, Piciarelli, Foresti, ICPR 2020).

One file per concern: model.py (the network), losses.py (MSE, perceptual, SSIM, scores, error
maps), data.py (datasets), splits.py (held-out normals), threshold.py (threshold rules),
train.py, evaluate.py, paper.py (the paper's tables), plots.py, reproduce.py, cli.py.
"""

__version__ = "0.1.0"
