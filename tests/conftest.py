"""Shared Hypothesis settings for the whole test suite.

Profiles (choose with ``HYPOTHESIS_PROFILE=<name>``; the default is ``default``):

* ``default`` — Hypothesis' usual example counts, no per-example deadline (a shared
  CI machine makes timing-based failures flaky), randomised as usual so that CI
  keeps exploring new inputs; a failure prints the seed/blob needed to replay it.
* ``quick``   — a fast smoke pass for local iteration.
* ``thorough`` — many more examples, for an occasional deep run.

A test that sets its own ``max_examples`` overrides the profile; to keep such a
budget proportional to the profile, scale it by
``settings.default.max_examples / 100`` (100 is Hypothesis' own default).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("quick", deadline=None, print_blob=True, max_examples=20)
settings.register_profile("thorough", deadline=None, print_blob=True, max_examples=2_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
