"""Approximate Bayesian computation: distances, rejection and SMC ABC, and the by-hand ABC of
the lessons. No network is trained here."""
