//! Storage migrations of the pallet.
//!
//! The pallet's storage layout is versioned ([`crate::STORAGE_VERSION`],
//! written at genesis and checked against the code by `try-runtime` and by
//! this crate's tests). Version 1 is the first layout, so there is nothing
//! to migrate yet. A change to any storage item's layout bumps the version
//! and adds a migration here (a `frame_support::migrations::VersionedMigration`
//! from the old version to the new one), which the runtime lists in its
//! `Migrations`.
