"""Sous executor: durable recipe execution with LLM agents and tools"""
