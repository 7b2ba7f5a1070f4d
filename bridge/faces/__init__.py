"""Face enrolment and matching for the ``faces`` task (descriptors only, never photos)."""
