"""The LSTM and everything around it: network, batches, devices, checkpoint, model file, scoring,
the probability -> label decision. Imports core and data; stages, tracking and report import it."""
