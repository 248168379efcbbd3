"""Hand-built given/expected cases for the warehouse views (tiny Parquet inputs)."""
