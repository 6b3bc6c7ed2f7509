"""Sous gateway: authentication, workspace isolation, API keys, routing, limits"""
