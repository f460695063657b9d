//! Decodes Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`, sent by
//! kubectl 1.32+ for typed `create`) into the JSON object Kubernetes would serialise for the
//! same Go value, driven by the [`crate::schema`] tables.
//!
//! Know before editing: Go's protobuf encoder always writes non-pointer scalars, so a present
//! `""`/`0`/`false` is dropped exactly where the Go JSON tag says `omitempty` on a non-pointer
//! ([`Field::omit_zero`]); pointer fields keep their zero (`replicas: 0`). Output keys follow the
//! Go struct order, as Kubernetes' JSON does. Wire format: <https://protobuf.dev/programming-guides/encoding/>;
//! envelope: `k8s.io/apimachinery/pkg/runtime/serializer/protobuf`.

mod well_known;
mod wire;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::schema::{self, Field, Message, Scalar, Shape, Type};
use wire::{Reader, I64, LEN, VARINT};

/// The four bytes that open every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Decodes a whole request body: magic, `runtime.Unknown` envelope, then the object of the
/// kind named in its type meta. The result carries `kind` and `apiVersion` first.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
    let envelope = Envelope::parse(Reader::new(rest, MAGIC.len()))?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedContentEncoding(
            envelope.content_encoding,
        ));
    }
    let (group, version) = match envelope.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", envelope.api_version.as_str()),
    };
    let message = schema::kind_message(group, version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            gvk: format!("{group}/{version}, Kind={}", envelope.kind),
        }
    })?;
    let mut object = Map::new();
    object.insert("kind".into(), Value::String(envelope.kind.clone()));
    object.insert(
        "apiVersion".into(),
        Value::String(envelope.api_version.clone()),
    );
    if let Some(raw) = envelope.raw {
        object.extend(decode_message(message, raw)?);
    }
    Ok(Value::Object(object))
}

/// Decodes the bytes of one message (no magic, no envelope) into its JSON object.
pub fn decode_message_bytes(name: &str, bytes: &[u8]) -> Result<Map<String, Value>, ProtobufError> {
    let message =
        schema::message(name).ok_or_else(|| ProtobufError::UnknownMessage(name.to_string()))?;
    decode_message(message, Reader::new(bytes, 0))
}

/// Why a protobuf body could not be decoded. Offsets count bytes from the start of the body.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("body does not start with the kubernetes protobuf magic \"k8s\\x00\"")]
    BadMagic,
    #[error("truncated varint at offset {offset}")]
    TruncatedVarint { offset: usize },
    #[error("malformed varint at offset {offset}: longer than 10 bytes")]
    MalformedVarint { offset: usize },
    #[error("invalid field key at offset {offset}")]
    BadKey { offset: usize },
    #[error("field {field} at offset {offset} runs past the end of its message")]
    Truncated { field: String, offset: usize },
    #[error("unknown kind \"{gvk}\"")]
    UnknownKind { gvk: String },
    #[error("unsupported content encoding {0:?}")]
    UnsupportedContentEncoding(String),
    #[error("message {0} is not in the schema")]
    UnknownMessage(String),
    #[error("unknown field number {tag} in message {message} at offset {offset}")]
    UnknownField {
        message: String,
        tag: u32,
        offset: usize,
    },
    #[error("wrong wire type {wire} for field {field} at offset {offset} (expected {expected})")]
    WrongWireType {
        field: String,
        wire: u8,
        expected: u8,
        offset: usize,
    },
    #[error("field {field} is not valid utf-8")]
    InvalidUtf8 { field: String },
    #[error("field {field} holds a time outside the years 0 to 9999")]
    TimeOutOfRange { field: String },
    #[error("field {field} holds a non-finite number")]
    NonFiniteDouble { field: String },
    #[error("field {field} does not hold valid json")]
    InvalidJson {
        field: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `runtime.Unknown`: typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: Option<Reader<'a>>,
    content_encoding: String,
}

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

impl<'a> Envelope<'a> {
    fn parse(mut r: Reader<'a>) -> Result<Self, ProtobufError> {
        let mut env = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: None,
            content_encoding: String::new(),
        };
        while !r.is_empty() {
            let offset = r.offset();
            let (tag, wire) = r.key()?;
            let name = match tag {
                1 => "typeMeta",
                2 => "raw",
                3 => "contentEncoding",
                4 => "contentType",
                _ => return Err(unknown_field(UNKNOWN, tag, offset)),
            };
            let field = format!("{UNKNOWN}.{name}");
            expect_wire(&field, wire, LEN, offset)?;
            let mut value = r.len_delimited(&field)?;
            match tag {
                1 => {
                    while !value.is_empty() {
                        let offset = value.offset();
                        let (tag, wire) = value.key()?;
                        let name = match tag {
                            1 => "apiVersion",
                            2 => "kind",
                            _ => return Err(unknown_field(TYPE_META, tag, offset)),
                        };
                        let field = format!("{TYPE_META}.{name}");
                        expect_wire(&field, wire, LEN, offset)?;
                        let text = utf8(value.len_delimited(&field)?.remaining(), &field)?;
                        if tag == 1 {
                            env.api_version = text;
                        } else {
                            env.kind = text;
                        }
                    }
                }
                2 => env.raw = Some(value),
                3 => env.content_encoding = utf8(value.remaining(), &field)?,
                _ => {} // contentType is informational; the body is protobuf by definition
            }
        }
        Ok(env)
    }
}

fn decode_message(
    message: &Message,
    mut r: Reader<'_>,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut slots: Vec<Option<Value>> = vec![None; message.fields.len()];
    while !r.is_empty() {
        let offset = r.offset();
        let (tag, wire) = r.key()?;
        let index = message
            .fields
            .iter()
            .position(|f| f.tag == tag)
            .ok_or_else(|| unknown_field(message.name, tag, offset))?;
        let field = &message.fields[index];
        let slot = &mut slots[index];
        match field.shape {
            Shape::Single => *slot = Some(decode_single(message, field, wire, offset, &mut r)?),
            Shape::List => {
                let items = match slot.get_or_insert_with(|| Value::Array(Vec::new())) {
                    Value::Array(items) => items,
                    _ => unreachable!("list slots only ever hold arrays"),
                };
                if wire == LEN && wire_type(field.ty) != LEN {
                    // Packed repeated scalars: accepted as the protobuf spec requires.
                    let mut packed = r.len_delimited(&field_name(message, field))?;
                    while !packed.is_empty() {
                        let offset = packed.offset();
                        let wire = wire_type(field.ty);
                        items.push(decode_single(message, field, wire, offset, &mut packed)?);
                    }
                } else {
                    items.push(decode_single(message, field, wire, offset, &mut r)?);
                }
            }
            Shape::Map => {
                let name = field_name(message, field);
                expect_wire(&name, wire, LEN, offset)?;
                let (key, value) = decode_map_entry(message, field, r.len_delimited(&name)?)?;
                if let Value::Object(map) = slot.get_or_insert_with(|| Value::Object(Map::new())) {
                    map.insert(key, value);
                }
            }
        }
    }
    let mut out = Map::new();
    for (field, slot) in message.fields.iter().zip(slots) {
        let Some(value) = slot else { continue };
        if field.inline {
            if let Value::Object(inner) = value {
                out.extend(inner);
            }
        } else if !(field.omit_zero && is_zero(&value)) {
            out.insert(field.json.to_string(), value);
        }
    }
    Ok(out)
}

/// One value of `field` at the reader's position, whose key (with `wire`) is already read.
fn decode_single(
    owner: &Message,
    field: &Field,
    wire: u8,
    offset: usize,
    r: &mut Reader<'_>,
) -> Result<Value, ProtobufError> {
    let name = field_name(owner, field);
    expect_wire(&name, wire, wire_type(field.ty), offset)?;
    let scalar = match field.ty {
        Type::Message(inner) => {
            let message = schema::message(inner)
                .ok_or_else(|| ProtobufError::UnknownMessage(inner.to_string()))?;
            return decode_message(message, r.len_delimited(&name)?).map(Value::Object);
        }
        Type::Scalar(scalar) => scalar,
    };
    match scalar {
        Scalar::Bool => Ok(Value::Bool(r.varint()? != 0)),
        // Negative int32 values travel as 10-byte two's complement varints.
        Scalar::Int32 => Ok(Value::from(r.varint()? as i64 as i32)),
        Scalar::Int64 => Ok(Value::from(r.varint()? as i64)),
        Scalar::Double => Number::from_f64(f64::from_bits(r.fixed64(&name)?))
            .map(Value::Number)
            .ok_or(ProtobufError::NonFiniteDouble { field: name }),
        _ => decode_len_scalar(scalar, r.len_delimited(&name)?, &name),
    }
}

/// A length-delimited scalar: string, bytes, or one of the small well-known messages.
fn decode_len_scalar(scalar: Scalar, r: Reader<'_>, name: &str) -> Result<Value, ProtobufError> {
    let bytes = r.remaining();
    match scalar {
        Scalar::String => utf8(bytes, name).map(Value::String),
        Scalar::Bytes => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        Scalar::Quantity => {
            // Quantity { optional string string = 1 }, already in canonical form.
            let [text, ..] = small_message(&r, QUANTITY, &[LEN])?;
            Ok(Value::String(match text {
                Some(Small::Bytes(b)) => utf8(b, name)?,
                _ => String::new(),
            }))
        }
        Scalar::IntOrString => {
            // IntOrString { type = 1 (0 int, 1 string), intVal = 2, strVal = 3 }
            let [kind, int, text] = small_message(&r, INT_OR_STRING, &[VARINT, VARINT, LEN])?;
            if matches!(kind, Some(Small::Varint(1))) {
                let text = match text {
                    Some(Small::Bytes(b)) => utf8(b, name)?,
                    _ => String::new(),
                };
                Ok(Value::String(text))
            } else {
                let int = match int {
                    Some(Small::Varint(v)) => v as i64 as i32,
                    _ => 0,
                };
                Ok(Value::from(int))
            }
        }
        Scalar::Time | Scalar::MicroTime => {
            // Timestamp { seconds = 1, nanos = 2 }; an empty message is Go's zero time: null.
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            let [seconds, nanos, ..] = small_message(&r, TIMESTAMP, &[VARINT, VARINT])?;
            let seconds = small_int(seconds);
            let text = if scalar == Scalar::Time {
                well_known::rfc3339(seconds)
            } else {
                well_known::rfc3339_micro(seconds, small_int(nanos) as i32)
            };
            text.map(Value::String)
                .ok_or_else(|| ProtobufError::TimeOutOfRange {
                    field: name.to_string(),
                })
        }
        Scalar::Duration => {
            let [nanos, ..] = small_message(&r, DURATION, &[VARINT])?;
            Ok(Value::String(well_known::go_duration(small_int(nanos))))
        }
        Scalar::Any => {
            // RawExtension / FieldsV1 { bytes raw = 1 } holding JSON; nil raw marshals as null.
            let [raw, ..] = small_message(&r, RAW, &[LEN])?;
            match raw {
                Some(Small::Bytes(raw)) if !raw.is_empty() => {
                    serde_json::from_slice(raw).map_err(|source| ProtobufError::InvalidJson {
                        field: name.to_string(),
                        source,
                    })
                }
                _ => Ok(Value::Null),
            }
        }
        Scalar::Bool | Scalar::Int32 | Scalar::Int64 | Scalar::Double => {
            unreachable!("varint and fixed64 scalars are decoded by decode_single")
        }
    }
}

fn decode_map_entry(
    owner: &Message,
    field: &Field,
    mut entry: Reader<'_>,
) -> Result<(String, Value), ProtobufError> {
    let name = field_name(owner, field);
    let mut key = String::new();
    let mut value = None;
    while !entry.is_empty() {
        let offset = entry.offset();
        let (tag, wire) = entry.key()?;
        match tag {
            1 => {
                let key_name = format!("{name}.key");
                expect_wire(&key_name, wire, LEN, offset)?;
                key = utf8(entry.len_delimited(&key_name)?.remaining(), &key_name)?;
            }
            2 => value = Some(decode_single(owner, field, wire, offset, &mut entry)?),
            _ => return Err(unknown_field(&format!("{name} map entry"), tag, offset)),
        }
    }
    let value = match value {
        Some(value) => value,
        None => zero_value(field)?,
    };
    Ok((key, value))
}

/// The JSON of a map value whose entry left the value out (protobuf's default).
fn zero_value(field: &Field) -> Result<Value, ProtobufError> {
    match field.ty {
        Type::Scalar(Scalar::Bool) => Ok(Value::Bool(false)),
        Type::Scalar(Scalar::Int32 | Scalar::Int64 | Scalar::Double) => Ok(Value::from(0)),
        Type::Scalar(scalar) => decode_len_scalar(scalar, Reader::new(&[], 0), field.json),
        Type::Message(_) => Ok(Value::Object(Map::new())),
    }
}

const QUANTITY: &str = "k8s.io.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";
const TIMESTAMP: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Timestamp";
const DURATION: &str = "k8s.io.apimachinery.pkg.apis.meta.v1.Duration";
const RAW: &str = "k8s.io.apimachinery.pkg.runtime.RawExtension";

enum Small<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// Reads a well-known message whose fields 1..=n have the given wire types.
fn small_message<'a>(
    r: &Reader<'a>,
    message: &str,
    wires: &[u8],
) -> Result<[Option<Small<'a>>; 3], ProtobufError> {
    let mut out = [None, None, None];
    let mut r = Reader::new(r.remaining(), r.offset());
    while !r.is_empty() {
        let offset = r.offset();
        let (tag, wire) = r.key()?;
        let index = tag as usize - 1;
        let Some(&expected) = wires.get(index) else {
            return Err(unknown_field(message, tag, offset));
        };
        let field = format!("{message}.{tag}");
        expect_wire(&field, wire, expected, offset)?;
        out[index] = Some(if expected == VARINT {
            Small::Varint(r.varint()?)
        } else {
            Small::Bytes(r.len_delimited(&field)?.remaining())
        });
    }
    Ok(out)
}

fn small_int(value: Option<Small<'_>>) -> i64 {
    match value {
        Some(Small::Varint(v)) => v as i64,
        _ => 0,
    }
}

fn wire_type(ty: Type) -> u8 {
    match ty {
        Type::Scalar(Scalar::Bool | Scalar::Int32 | Scalar::Int64) => VARINT,
        Type::Scalar(Scalar::Double) => I64,
        _ => LEN,
    }
}

fn expect_wire(field: &str, wire: u8, expected: u8, offset: usize) -> Result<(), ProtobufError> {
    if wire == expected {
        Ok(())
    } else {
        Err(ProtobufError::WrongWireType {
            field: field.to_string(),
            wire,
            expected,
            offset,
        })
    }
}

fn unknown_field(message: &str, tag: u32, offset: usize) -> ProtobufError {
    ProtobufError::UnknownField {
        message: message.to_string(),
        tag,
        offset,
    }
}

fn field_name(owner: &Message, field: &Field) -> String {
    format!("{}.{}", owner.name, field.json)
}

fn utf8(bytes: &[u8], field: &str) -> Result<String, ProtobufError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 {
        field: field.to_string(),
    })
}

/// Go's `omitempty` zero for scalars: `""`, `0`, `false`.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
