"""Monitoring: profiles, drift, delayed-label performance, alerts and the retraining loop."""
