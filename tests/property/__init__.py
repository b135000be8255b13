"""Property-based tests (hypothesis): the edges of the product never raise, whatever arrives."""
