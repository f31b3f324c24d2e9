"""Videos → RGB frames + TV-L1 flow → sharded TFRecords (`python -m
data_prep.prepare`), and the embedded toy dataset (`data_prep.toy`)."""
