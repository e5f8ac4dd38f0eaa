"""Host-side training: data loaders, synthetic WESAD, teachers, distilled student, evaluation."""
