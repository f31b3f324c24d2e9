"""Serving: the SavedModel export, its served graph and streaming
signatures, and prediction on whole or streamed videos."""
