//! Subsonic's XML form of a response, from the same JSON tree the `f=json`
//! form sends. The two follow one rule (the Subsonic XSD's, which every
//! server's JSON mirrors): in an element, a scalar field is an attribute, an
//! object field a child element, a list field one child element per item, and
//! a field named `value` the element's text.
//!
//! Written by hand rather than with an XML crate: the tree is small, only
//! attributes and text need escaping, and the rule above is the whole mapping.

use serde_json::Value;

/// `<name …>` for `value` (an object; anything else becomes the text).
pub(crate) fn element(out: &mut String, name: &str, value: &Value, namespace: Option<&str>) {
    out.push('<');
    out.push_str(name);
    if let Some(ns) = namespace {
        out.push_str(" xmlns=\"");
        escape(out, ns);
        out.push('"');
    }
    let Value::Object(fields) = value else {
        out.push('>');
        escape(out, &scalar(value));
        close(out, name);
        return;
    };
    let mut text = None;
    let mut children = Vec::new();
    for (k, v) in fields {
        match v {
            Value::Null => {}
            Value::Object(_) | Value::Array(_) => children.push((k, v)),
            _ if k == "value" => text = Some(scalar(v)),
            _ => {
                out.push(' ');
                out.push_str(k);
                out.push_str("=\"");
                escape(out, &scalar(v));
                out.push('"');
            }
        }
    }
    if text.is_none() && children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    if let Some(t) = text {
        escape(out, &t);
    }
    for (k, v) in children {
        match v {
            Value::Array(items) => {
                for item in items {
                    element(out, k, item, None);
                }
            }
            other => element(out, k, other, None),
        }
    }
    close(out, name);
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Escapes text for an attribute or element body. Characters XML 1.0 cannot
/// carry at all (most controls) are dropped: a tag may hold anything.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                out.push_str("&#");
                out.push_str(&u32::from(c).to_string());
                out.push(';');
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_are_attributes_lists_repeat_and_value_is_text() {
        let v = json!({
            "status": "ok",
            "genres": {"genre": [
                {"value": "Rock & Roll", "songCount": 2},
                {"value": "Folk", "songCount": 1}
            ]},
            "nothing": null
        });
        let mut out = String::new();
        element(
            &mut out,
            "subsonic-response",
            &v,
            Some("http://subsonic.org/restapi"),
        );
        assert_eq!(
            out,
            "<subsonic-response xmlns=\"http://subsonic.org/restapi\" status=\"ok\"><genres>\
             <genre songCount=\"2\">Rock &amp; Roll</genre><genre songCount=\"1\">Folk</genre>\
             </genres></subsonic-response>"
        );
    }

    #[test]
    fn hostile_tag_text_stays_inside_its_attribute() {
        let v = json!({"title": "\"/><evil a='1'>\u{1}\n"});
        let mut out = String::new();
        element(&mut out, "song", &v, None);
        assert_eq!(
            out,
            "<song title=\"&quot;/&gt;&lt;evil a=&apos;1&apos;&gt;&#10;\"/>"
        );
    }
}
