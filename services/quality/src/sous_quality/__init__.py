"""Sous quality and learning: scores, patterns, suggestions, agent metrics"""
