//! Schema helpers for the OpenAPI description (feature `openapi`).

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{KnownFormat, RefOr};

/// An integer-coded enum (bk-job's status codes): the codes as `enum`, each code's meaning in
/// the description.
pub fn coded_schema<'a>(name: &str, codes: impl Iterator<Item = (i32, &'a str)>) -> RefOr<Schema> {
    let codes: Vec<(i32, &str)> = codes.collect();
    let meanings: Vec<String> = codes.iter().map(|(c, t)| format!("{c} {t}")).collect();
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Integer))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .description(Some(format!("{name} code: {}", meanings.join(", "))))
        .enum_values(Some(codes.iter().map(|(c, _)| *c)))
        .into()
}
