"""Adapters to other tools' data shapes (pandas, ConvoKit, Ray Data). Each imports its optional
extra only when used, so a plain install never needs them.
"""
