"""The parity capability: the case matrix, the runner that judges one case on one backend
against the NumPy reference, kink re-judging and the reports (table, JSON, JUnit)."""
