"""Eval harness: golden dataset, scorers and a pass/fail threshold (``python -m evals``)."""
