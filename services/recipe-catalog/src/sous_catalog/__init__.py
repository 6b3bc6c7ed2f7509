"""Sous recipe catalog: agents, event-sourced recipes, versions, discovery"""
