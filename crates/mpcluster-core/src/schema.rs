//! OpenAPI schemas (feature `schema`) of the wire types whose JSON is written by hand rather
//! than by `#[derive(Serialize)]`: identifiers and digests are strings, a knob value is an
//! integer or a word, a knob set is an object, ... Each is described here by a private mirror
//! that derives `utoipa::ToSchema` with the same JSON shape (and the same name), so every
//! schema is derived, never assembled by hand. Types whose serde is derived derive `ToSchema`
//! where they are defined (`#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]`).

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{OneOfBuilder, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::config::{KnobSpec, KnobValue, Knobs, ValueType, WwidEntry};
use crate::digest::ConfigDigest;
use crate::ids::{
    ALIAS_MAX_LEN, Alias, NODE_NAME_MAX_LEN, NodeName, STORAGE_ID_MAX_LEN, StorageId,
};
use crate::ids::{WWID_MAX_LEN, Wwid};
use crate::storage::{Expectations, Storage};

/// A string schema with a description, bounds and an optional pattern.
fn string(description: &str, max_len: Option<usize>, pattern: Option<&str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(max_len)
        .pattern(pattern)
        .into()
}

/// `impl ToSchema` for a type whose schema is a plain string.
macro_rules! string_schema {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

string_schema!(
    Wwid,
    "Wwid",
    string(
        "A LUN's World Wide Identifier as multipathd reports it",
        Some(WWID_MAX_LEN),
        None
    )
);
string_schema!(
    NodeName,
    "NodeName",
    string(
        "A node name (A-Z a-z 0-9 . _ -)",
        Some(NODE_NAME_MAX_LEN),
        None
    )
);
string_schema!(
    Alias,
    "Alias",
    string(
        "A map alias (A-Z a-z 0-9 . _ -, unique in the cluster)",
        Some(ALIAS_MAX_LEN),
        None
    )
);
string_schema!(
    StorageId,
    "StorageId",
    string(
        "A storage id (A-Z a-z 0-9 . _ -)",
        Some(STORAGE_ID_MAX_LEN),
        None
    )
);
string_schema!(
    ConfigDigest,
    "Digest",
    string(
        "A document's digest: SHA-256 of its stored text, 64 lowercase hex digits",
        Some(64),
        Some("^[0-9a-f]{64}$")
    )
);
string_schema!(
    KnobValue,
    "KnobValue",
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
        )
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "A knob's value: an integer, or one of the knob's words (see the knob table)"
        ))
        .into()
);

/// `impl ToSchema` for a type described by a mirror in [`mirror`].
macro_rules! mirrored {
    ($ty:ty, $mirror:ty) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                <$mirror as PartialSchema>::schema()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                <$mirror as ToSchema>::name()
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$mirror as ToSchema>::schemas(schemas);
            }
        }
    };
}

mirrored!(Knobs, mirror::Knobs);
mirrored!(WwidEntry, mirror::WwidEntry);
mirrored!(KnobSpec, mirror::KnobSpec);
mirrored!(ValueType, mirror::ValueType);
mirrored!(Storage, mirror::Storage);
mirrored!(Expectations, mirror::Expectations);

/// Mirrors with the JSON shape of the hand-serialized types (never built; only their derived
/// schemas are used).
#[allow(dead_code)]
mod mirror {
    use std::collections::BTreeMap;

    use utoipa::ToSchema;

    use crate::config::KnobValue;
    use crate::ids::{Alias, NodeName, StorageId, Wwid};

    /// Knobs by name (`{"polling-interval": 5, "no-path-retry": "queue"}`); knobs not set are
    /// absent.
    #[derive(ToSchema)]
    pub struct Knobs(BTreeMap<String, KnobValue>);

    /// An allow-list entry's alias and per-LUN knobs (`{"alias"?, "<knob>": value...}`).
    #[derive(ToSchema)]
    pub struct WwidEntry {
        /// The map alias (else the map is named by its WWID).
        alias: Option<Alias>,
        /// Per-LUN knobs by name.
        #[serde(flatten)]
        knobs: BTreeMap<String, KnobValue>,
    }

    /// One row of the knob table.
    #[derive(ToSchema)]
    #[serde(rename_all = "kebab-case")]
    pub struct KnobSpec {
        /// Kebab-case name used in the stored JSON, the API and the CLI (`polling-interval`).
        name: String,
        /// multipath.conf keyword (`polling_interval`).
        keyword: String,
        /// Accepted values.
        value_type: ValueType,
        /// Whether it may be set per LUN as well as in `defaults`.
        per_lun: bool,
        /// One-line description.
        description: String,
    }

    /// What values a knob takes.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    pub enum ValueType {
        /// A decimal integer in `min..=max`.
        Integer {
            /// Smallest accepted value.
            min: u32,
            /// Largest accepted value.
            max: u32,
            /// What the number counts (`seconds`, `requests`, ...).
            unit: String,
        },
        /// One of a fixed set of words (exact multipath.conf spellings).
        Choice {
            /// The accepted words.
            words: Vec<String>,
        },
        /// One of a fixed set of words, or an integer in `min..=max`.
        ChoiceOrInteger {
            /// The accepted words.
            words: Vec<String>,
            /// Smallest accepted integer.
            min: u32,
            /// Largest accepted integer.
            max: u32,
            /// What the number counts.
            unit: String,
        },
    }

    /// One storage definition.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "lowercase")]
    pub enum Storage {
        /// A multipath storage: exposes the allow-listed maps on the nodes where it is
        /// enabled.
        Multipath {
            /// Storage id.
            id: StorageId,
            /// Nodes where the storage is available; absent = every cluster node.
            nodes: Option<Vec<NodeName>>,
            /// Disabled storages count nowhere (absent = enabled).
            disable: Option<bool>,
        },
        /// An LVM storage whose volume group sits on one multipath LUN.
        Lvm {
            /// Storage id.
            id: StorageId,
            /// The volume group name.
            vgname: String,
            /// The base volume: `<multipath-storage-id>:<wwid>`.
            base: String,
            /// Nodes where the storage is available; absent = every cluster node.
            nodes: Option<Vec<NodeName>>,
            /// Disabled storages count nowhere (absent = enabled).
            disable: Option<bool>,
        },
    }

    /// What the storage definitions say about where LUNs should be.
    #[derive(ToSchema)]
    pub struct Expectations {
        /// Every node on which an enabled multipath storage is available (`{"<node>": 1}`).
        nodes: BTreeMap<NodeName, u8>,
        /// Per WWID consumed by an enabled LVM storage: the nodes where that chain is
        /// available (`{"<wwid>": {"<node>": 1}}`).
        #[serde(rename = "wwid-nodes")]
        wwid_nodes: BTreeMap<Wwid, BTreeMap<NodeName, u8>>,
        /// Per WWID: the consuming LVM storage ids, sorted and comma-joined.
        consumers: BTreeMap<Wwid, String>,
    }
}
