"""Experiments: A/B arms of a placement, exposures, outcomes and the winner."""
