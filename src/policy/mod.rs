//! AWS-IoT-style authorization: policy documents, variables, evaluation, registry.
