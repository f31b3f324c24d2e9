"""Serving: the SavedModel export, its served graph and streaming
signatures, and prediction on whole or streamed videos.

An export holds, beside the SavedModel, the client config that
`saved_model` writes and `prediction` reads: `assets/<CONFIG_FILE>`.
"""

CONFIG_FILE = "avlad_export.json"
# 3: `joint_sampling` is the setting's own value, as in gin and run.json.
FORMAT_VERSION = 3
