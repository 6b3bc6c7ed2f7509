"""Sous local stack: embedded PostgreSQL and broker, offline model server, the sous CLI"""
