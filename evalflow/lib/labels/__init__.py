"""Labels: what annotators hand back (Label Studio exports, filled-in batch CSVs), checked against
each other (agreement), against the known-answer gold cases (annotator quality), and merged into
consensus labels. See docs/labels.md.
"""
