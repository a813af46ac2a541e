"""The annual report for the IRO annual report: the figures, their formats, and past years' import."""
