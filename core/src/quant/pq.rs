//! Product quantization: codebooks, encode/decode, ADC lookup tables and table scans.
