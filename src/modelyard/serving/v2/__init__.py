"""The Open Inference Protocol V2 (KServe's "V2", Triton's HTTP/gRPC API) over the inference core.

Protocol-neutral parts, shared by both transports: ``datatypes`` (V2 datatypes and numpy),
``elements`` (a tensor's elements from JSON values or raw bytes), ``tensors`` (the
:class:`~.tensors.Tensor` codec: rows for the model, output tensors, model metadata), ``rows``
(input tensors to rows) and ``catalog`` (health and metadata answers). REST: ``rest`` (the
routes), ``payload`` (the /infer bodies) and ``binary`` (the binary tensor data extension's
framing). gRPC: the ``grpc*`` modules.
"""
