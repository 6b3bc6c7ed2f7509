"""Sous marketplace: submit, moderate, browse, install"""
