//! `#[root_test("REASON")]` declares an integration test that needs root,
//! in one place: it expands to
//!
//! ```ignore
//! #[test]
//! #[ignore = "needs root: REASON"]
//! fn name() {
//!     crate::common::require_root();
//!     // the body
//! }
//! ```
//!
//! so a run that is not root lists the test as ignored with its reason,
//! a root run includes it (`tests/it/common` re-runs the binary with
//! `--include-ignored` as root), and forcing it as another user fails it
//! with "run as root" instead of letting it pass unchecked.
//!
//! Written on `proc_macro` alone: the input is one string literal and a
//! function whose last token is its body, which needs no parser crate.

use proc_macro::{Delimiter, Group, Literal, Span, TokenStream, TokenTree};

/// Marks a test that needs root; the argument says why (e.g. "loads eBPF").
#[proc_macro_attribute]
pub fn root_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item) {
        Ok(out) => out,
        Err((span, msg)) => compile_error(span, msg),
    }
}

fn expand(attr: TokenStream, item: TokenStream) -> Result<TokenStream, (Span, &'static str)> {
    let reason = reason(attr)?;
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let is_fn = tokens
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"));
    let body = match tokens.last_mut() {
        Some(TokenTree::Group(g)) if is_fn && g.delimiter() == Delimiter::Brace => g,
        _ => return Err((Span::call_site(), "#[root_test] goes on a test function")),
    };
    let mut inner: TokenStream = "crate::common::require_root();".parse().unwrap();
    inner.extend(body.stream());
    let mut new_body = Group::new(Delimiter::Brace, inner);
    new_body.set_span(body.span());
    *body = new_body;

    let ignore = Literal::string(&format!("needs root: {reason}"));
    let mut out: TokenStream = format!("#[test] #[ignore = {ignore}]").parse().unwrap();
    out.extend(tokens);
    Ok(out)
}

/// The text of the one plain string literal in `attr`.
fn reason(attr: TokenStream) -> Result<String, (Span, &'static str)> {
    let mut it = attr.into_iter();
    let (Some(TokenTree::Literal(lit)), None) = (it.next(), it.next()) else {
        return Err((
            Span::call_site(),
            "#[root_test(\"REASON\")] takes one string",
        ));
    };
    let text = lit.to_string();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(t) if !t.is_empty() && !t.contains(['\\', '"']) => Ok(t.to_string()),
        _ => Err((
            lit.span(),
            "the reason is a plain, non-empty string without escapes",
        )),
    }
}

fn compile_error(span: Span, msg: &str) -> TokenStream {
    let call: TokenStream = format!("::core::compile_error!({msg:?});").parse().unwrap();
    call.into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}
