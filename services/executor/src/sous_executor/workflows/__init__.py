"""Workflows: a task decomposed by a planner agent and carried through nine recorded stages.

The stage machine lives in the executor because stage 4 runs the subtasks on this service's engine as a
generated recipe: starting that execution and recording the stage commit in one transaction.
"""
