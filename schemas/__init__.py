"""The shape on the wire: Avro schemas, the single-object codec and topic names."""

from schemas.codec import AvroCodec, SchemaError, UnknownSchemaError
from schemas.topics import Topics, TopicSpec

__all__ = ["AvroCodec", "SchemaError", "TopicSpec", "Topics", "UnknownSchemaError"]
