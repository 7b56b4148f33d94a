//! Just enough HTML reading for oidc-provider's own pages: forms, their inputs, links.

use std::sync::LazyLock;

use regex::Regex;

static FORM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<form\b([^>]*)>(.*?)</form>").expect("regex"));
static INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<input\b([^>]*)>").expect("regex"));
static ATTRIBUTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*"([^"]*)""#).expect("regex"));
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").expect("regex"));

/// One `<form>` with its `<input>`s in document order.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    pub id: Option<String>,
    pub action: Option<String>,
    pub method: String,
    pub inputs: Vec<Input>,
}

#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub name: String,
    pub value: String,
}

impl Form {
    pub fn value(&self, name: &str) -> Option<&str> {
        let input = self.inputs.iter().find(|input| input.name == name)?;
        Some(input.value.as_str())
    }

    /// The fields a browser would submit, with `overrides` replacing or adding values.
    pub fn fields(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .inputs
            .iter()
            .map(|input| (input.name.clone(), input.value.clone()))
            .collect();
        for (name, value) in overrides {
            match fields.iter_mut().find(|(field, _)| field == name) {
                Some(field) => field.1 = (*value).to_owned(),
                None => fields.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        fields
    }
}

pub(crate) fn forms(html: &str) -> Vec<Form> {
    FORM.captures_iter(html)
        .map(|form| {
            let tag = attributes(&form[1]);
            let inputs = INPUT
                .captures_iter(&form[2])
                .filter_map(|input| {
                    let input = attributes(&input[1]);
                    Some(Input {
                        name: attribute(&input, "name")?,
                        value: attribute(&input, "value").unwrap_or_default(),
                    })
                })
                .collect();
            Form {
                id: attribute(&tag, "id"),
                action: attribute(&tag, "action"),
                method: attribute(&tag, "method").unwrap_or_else(|| "get".to_owned()),
                inputs,
            }
        })
        .collect()
}

/// The `href` of the first link whose target ends with `suffix`.
pub(crate) fn link_ending_with(html: &str, suffix: &str) -> Option<String> {
    ATTRIBUTE
        .captures_iter(html)
        .filter(|capture| capture[1].eq_ignore_ascii_case("href"))
        .map(|capture| unescape(&capture[2]))
        .find(|href| href.ends_with(suffix))
}

pub(crate) fn title(html: &str) -> String {
    let start = html.find("<title>").map(|at| at + "<title>".len());
    let end = html.find("</title>");
    match (start, end) {
        (Some(start), Some(end)) if start <= end => unescape(html[start..end].trim()),
        _ => String::new(),
    }
}

/// The page's text with tags removed and whitespace collapsed, for error messages.
pub(crate) fn text(html: &str) -> String {
    let body = html.find("<body").map_or(html, |at| &html[at..]);
    let text = unescape(&TAG.replace_all(body, " "));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn attributes(tag: &str) -> Vec<(String, String)> {
    ATTRIBUTE
        .captures_iter(tag)
        .map(|capture| (capture[1].to_owned(), unescape(&capture[2])))
        .collect()
}

fn attribute(attributes: &[(String, String)], name: &str) -> Option<String> {
    attributes
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.clone())
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_dev_login_form() {
        let html = r#"<form autocomplete="off" action="http://127.0.0.1:1/interaction/abc?a=1&amp;b=2" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
</form><a href="http://127.0.0.1:1/interaction/abc/abort">[ Cancel ]</a>"#;
        let forms = forms(html);
        assert_eq!(forms.len(), 1);
        let form = &forms[0];
        assert_eq!(
            form.action.as_deref(),
            Some("http://127.0.0.1:1/interaction/abc?a=1&b=2")
        );
        assert_eq!(form.method, "post");
        assert_eq!(form.value("prompt"), Some("login"));
        assert_eq!(form.value("password"), Some(""));
        let fields = form.fields(&[("login", "alice"), ("password", "x")]);
        assert!(fields.contains(&("login".to_owned(), "alice".to_owned())));
        assert_eq!(
            link_ending_with(html, "/abort").as_deref(),
            Some("http://127.0.0.1:1/interaction/abc/abort")
        );
    }
}
