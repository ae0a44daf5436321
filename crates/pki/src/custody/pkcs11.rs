//! PKCS#11 tokens (placeholder until implemented).
