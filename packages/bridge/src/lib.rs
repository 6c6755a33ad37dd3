//! Sans-IO bridges to external chat platforms (see the crate description).
