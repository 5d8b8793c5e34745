"""What the labels mean for a conversation: reciprocity per turn, matching, chance baselines,
corpus-level trends and the HTML report. Works on labeled messages, never on the model.
"""
