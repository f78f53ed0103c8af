//! Between the zone store's rrsets (presentation-format strings) and
//! hickory's wire records. The store keeps what both fronts agree on: names
//! absolute and lower case, TXT as quoted character strings (the form the
//! Cloud DNS API uses, so a record written over RFC 2136 reads back through
//! Cloud DNS unchanged), everything else as `dig` prints it.

use crate::lab::zone::RecordSet;
use crate::ports::dns::display_rdata;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Parses a record type stored in the zone (`A`, `TXT`, ...).
pub fn record_type(text: &str) -> Option<RecordType> {
    text.parse().ok()
}

/// The wire data of one stored value, `None` if the store holds something
/// that does not parse (another front wrote it; it is skipped, not fatal).
pub fn rdata(rtype: RecordType, value: &str) -> Option<RData> {
    let parsed = RData::try_from_str(rtype, value).ok()?;
    Some(match parsed {
        // A character string holds at most 255 bytes; Cloud DNS accepts
        // longer ones and splits them on the wire, so do the same.
        RData::TXT(txt) => RData::TXT(split_txt(txt)),
        other => other,
    })
}

fn split_txt(txt: TXT) -> TXT {
    if txt.txt_data.iter().all(|s| s.len() <= 255) {
        return txt;
    }
    let parts: Vec<Vec<u8>> = txt
        .txt_data
        .iter()
        .flat_map(|s| s.chunks(255).map(<[u8]>::to_vec).collect::<Vec<_>>())
        .collect();
    TXT::from_bytes(parts.iter().map(Vec::as_slice).collect())
}

/// The stored form of wire data: TXT quoted (each character string, with
/// `"` and `\` escaped), other types in their presentation format.
pub fn presentation(rdata: &RData) -> Option<String> {
    match rdata {
        RData::TXT(txt) => Some(
            txt.txt_data
                .iter()
                .map(|part| {
                    let text = String::from_utf8_lossy(part);
                    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => display_rdata(other),
    }
}

/// The wire records of a stored rrset (values that do not parse skipped).
pub fn to_records(rrset: &RecordSet) -> Vec<Record> {
    let (Ok(name), Some(rtype)) = (Name::from_ascii(&rrset.name), record_type(&rrset.rtype)) else {
        return Vec::new();
    };
    rrset
        .data
        .iter()
        .filter_map(|value| rdata(rtype, value))
        .map(|data| Record::from_rdata(name.clone(), rrset.ttl, data))
        .collect()
}

/// The wire data of a stored rrset, for comparisons with a request's records.
pub fn rdatas(rrset: &RecordSet) -> Vec<RData> {
    to_records(rrset).into_iter().map(|r| r.data).collect()
}

/// A wire name as the store keys it: absolute, lower case.
pub fn name_key(name: &Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_round_trips_through_the_quoted_form_and_long_strings_are_split() {
        let txt = RData::TXT(TXT::new(vec![
            "heritage=ferry,\"quoted\" back\\slash".into(),
            "second".into(),
        ]));
        let stored = presentation(&txt).unwrap();
        assert_eq!(
            stored,
            r#""heritage=ferry,\"quoted\" back\\slash" "second""#
        );
        assert_eq!(rdata(RecordType::TXT, &stored).unwrap(), txt);

        let long = format!("\"{}\"", "x".repeat(300));
        let RData::TXT(split) = rdata(RecordType::TXT, &long).unwrap() else {
            panic!("not TXT");
        };
        assert_eq!(
            split.txt_data.iter().map(|s| s.len()).collect::<Vec<_>>(),
            [255, 45]
        );
    }

    #[test]
    fn stored_rrsets_become_records_and_bad_values_are_skipped() {
        let rrset = RecordSet {
            name: "old.mycompany.internal.".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["10.0.0.1".into(), "not an address".into()],
        };
        let records = to_records(&rrset);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].ttl, 60);
        assert_eq!(presentation(&records[0].data).unwrap(), "10.0.0.1");
        assert_eq!(name_key(&records[0].name), "old.mycompany.internal.");
        let cname = rdata(RecordType::CNAME, "Target.MyCompany.Internal.").unwrap();
        assert_eq!(presentation(&cname).unwrap(), "target.mycompany.internal.");
    }
}
