//! k-means: k-means++ seeding, Lloyd iterations, empty-cluster repair, sampling.
