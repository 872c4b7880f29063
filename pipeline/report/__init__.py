"""The evaluation report: its numbers and plot tables (no torch), and its PNG figures.
Imports core, data and model (the decision); stages import it."""
