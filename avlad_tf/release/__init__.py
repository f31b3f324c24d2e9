"""Import the original ActionVLAD release's checkpoints and k-means files."""
