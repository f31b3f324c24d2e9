"""Figures of what an ActionVLAD model learned (paper Figs. 5-10).

`assignments.tinted_assignment_frames` is the NumPy function the training loop can
call to log assignment maps to TensorBoard; the rest backs
`python -m avlad_tf.visualize`.
"""
