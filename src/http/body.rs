//! Typed request bodies. Each route's body is one `serde` struct, which is also its
//! OpenAPI schema, checked by `garde` so that every bad field gets its own message in one
//! answer.
//!
//! A plain `#[derive(Deserialize)]` stops at the first field of the wrong type. Here every
//! field is a [`Field`] (required) or an [`Optional`], which take any JSON value and keep
//! what was wrong with it; the struct's `garde` rules then report each field's problem
//! under its wire name. Unknown fields are found before deserialising (from the names
//! `serde` itself knows the struct by): `/v1` refuses them, `/authentication` drops them.

use std::borrow::Cow;
use std::marker::PhantomData;

use garde::Validate;
use garde::error::{Error, Path, Report};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::domain::second_factor::SecondFactorCode;
use crate::domain::validate;
use crate::error::{AppError, FieldErrors};

/// What the rules of a body may need besides the body.
#[derive(Debug, Clone, Default)]
pub struct BodyContext {
    /// Unknown fields are errors (`/v1`) rather than ignored (`/authentication`).
    pub strict: bool,
    /// The service's name: a new password must not be built on it.
    pub issuer: String,
    /// Words a new password must not be built on, of an account that already exists
    /// (its email and user name); empty where the body itself names them.
    pub account_words: Vec<String>,
}

/// A message for a field that is wrong.
pub type Message = Cow<'static, str>;

/// A value a field can hold, read from the JSON value sent.
pub trait FieldValue: Sized {
    /// `Ok(None)` is a blank string, which counts as not sent.
    fn read(value: Value) -> Result<Option<Self>, Message>;

    /// Checks inside the value (a nested object's own fields).
    fn check(&self, _ctx: &BodyContext, _parent: &mut dyn FnMut() -> Path, _report: &mut Report) {}
}

/// A required field, as sent.
#[derive(Debug)]
pub enum Field<T> {
    Missing,
    Given(T),
    Invalid(Message),
}

impl<T> Field<T> {
    fn from_value(value: Value) -> Self
    where
        T: FieldValue,
    {
        match value {
            Value::Null => Field::Missing,
            value => match T::read(value) {
                Ok(Some(v)) => Field::Given(v),
                Ok(None) => Field::Missing,
                Err(message) => Field::Invalid(message),
            },
        }
    }

    /// The value, if it was sent and is valid.
    pub fn get(&self) -> Option<&T> {
        match self {
            Field::Given(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a checked body. Checking refuses a body with a missing or invalid
    /// required field, so this fails only if a route reads a body it did not check.
    pub fn into_valid(self) -> Result<T, AppError> {
        match self {
            Field::Given(v) => Ok(v),
            _ => Err(AppError::internal("a request field was read unchecked")),
        }
    }
}

impl<'de, T: FieldValue> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Field::from_value)
    }
}

impl<T: FieldValue> Validate for Field<T> {
    type Context = BodyContext;

    fn validate_into(
        &self,
        ctx: &BodyContext,
        parent: &mut dyn FnMut() -> Path,
        report: &mut Report,
    ) {
        match self {
            Field::Missing => report.append(parent(), Error::new("is required")),
            Field::Invalid(message) => report.append(parent(), Error::new(message.as_ref())),
            Field::Given(value) => value.check(ctx, parent, report),
        }
    }
}

/// An optional field: left out, `null` or a blank string all mean not sent.
#[derive(Debug)]
pub struct Optional<T>(Field<T>);

impl<T> Optional<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.get()
    }

    pub fn into_option(self) -> Option<T> {
        match self.0 {
            Field::Given(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> Optional<T> {
    /// The field as sent, when it was (a blank string counts as not sent).
    pub fn field(&self) -> Option<&Field<T>> {
        (!matches!(self.0, Field::Missing)).then_some(&self.0)
    }
}

impl<'de, T: FieldValue> Deserialize<'de> for Optional<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Field::deserialize(deserializer).map(Optional)
    }
}

impl<T: FieldValue> Validate for Optional<T> {
    type Context = BodyContext;

    fn validate_into(
        &self,
        ctx: &BodyContext,
        parent: &mut dyn FnMut() -> Path,
        report: &mut Report,
    ) {
        if !matches!(self.0, Field::Missing) {
            self.0.validate_into(ctx, parent, report);
        }
    }
}

/// Parses a body that must be a JSON object.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, AppError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Eof => "it ends early",
            serde_json::error::Category::Io => "it could not be read",
            _ => "syntax error",
        };
        AppError::MalformedJson(format!(
            "{reason} at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(AppError::field("body", "must be a JSON object")),
    }
}

/// The body of a route that takes none but `{}` (or no body at all).
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
#[garde(context(BodyContext))]
pub struct NoFields {}

/// A request body: a struct of fields with its `garde` rules.
pub trait RequestBody: DeserializeOwned + Validate<Context = BodyContext> {}

impl<T: DeserializeOwned + Validate<Context = BodyContext>> RequestBody for T {}

/// A body read but not yet checked, with the names of the fields it does not know.
pub struct Unchecked<T> {
    body: T,
    unknown: Vec<String>,
}

impl<T: RequestBody> Unchecked<T> {
    /// Reads a JSON object into `T`. Fields `T` does not know are set aside, and fields it
    /// knows but that were left out read as `null`, so reading cannot fail on any object.
    pub fn read(mut map: Map<String, Value>) -> Result<Self, AppError> {
        let known = serde_aux::serde_introspection::serde_introspect::<T>();
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in &unknown {
            map.remove(name);
        }
        for name in known {
            map.entry(*name).or_insert(Value::Null);
        }
        let body = T::deserialize(Value::Object(map))
            .map_err(|e| AppError::internal(format!("request body not read: {e}")))?;
        Ok(Self { body, unknown })
    }

    /// Checks the body: every field's problem, and (when strict) every unknown field.
    pub fn check(self, ctx: &BodyContext) -> Result<T, AppError> {
        let mut report = self
            .body
            .validate_with(ctx)
            .err()
            .unwrap_or_else(Report::new);
        if ctx.strict {
            report_unknown(&self.unknown, &mut Path::empty, &mut report);
        }
        if report.is_empty() {
            Ok(self.body)
        } else {
            Err(AppError::Validation(field_errors(report)))
        }
    }
}

/// The message of a field the body's struct does not know.
const UNKNOWN_FIELD: &str = "is not a known field";

fn report_unknown(unknown: &[String], parent: &mut dyn FnMut() -> Path, report: &mut Report) {
    for name in unknown {
        let shown: String = name.chars().take(64).collect();
        report.append(parent().join(shown), Error::new(UNKNOWN_FIELD));
    }
}

/// A report as the problem document's `errors`: wire name (`a.b` when nested) to messages.
fn field_errors(report: Report) -> FieldErrors {
    let mut errors = FieldErrors::new();
    for (path, error) in report.into_inner() {
        errors
            .entry(wire_name(&path, error.message() == UNKNOWN_FIELD))
            .or_default()
            .push(error.message().to_owned());
    }
    errors
}

/// The wire name of a reported path. `garde` names fields as Rust does (its `rename` is
/// not applied to reports), and every body here is `rename_all = "camelCase"`, so each
/// field is turned into camelCase; an unknown field, always last, is shown as sent.
fn wire_name(path: &Path, last_is_unknown: bool) -> String {
    let shown = path.to_string();
    let parts: Vec<&str> = shown.splitn(path.len().max(1), '.').collect();
    let fields = if last_is_unknown {
        parts.len().saturating_sub(1)
    } else {
        parts.len()
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i < fields {
                camel_case(part)
            } else {
                (*part).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A nested object: its own fields, checked like a body's, named `outer.inner`.
#[derive(Debug)]
pub struct Nested<T>(Unchecked<T>);

impl<T> Nested<T> {
    pub fn into_inner(self) -> T {
        self.0.body
    }
}

impl<T> std::fmt::Debug for Unchecked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unchecked")
            .field("unknown", &self.unknown)
            .finish_non_exhaustive()
    }
}

impl<T: RequestBody> FieldValue for Nested<T> {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        match value {
            Value::Object(map) => Unchecked::read(map)
                .map(|u| Some(Nested(u)))
                .map_err(|_| Cow::Borrowed("could not be read")),
            _ => Err(Cow::Borrowed("must be an object")),
        }
    }

    fn check(&self, ctx: &BodyContext, parent: &mut dyn FnMut() -> Path, report: &mut Report) {
        self.0.body.validate_into(ctx, parent, report);
        if ctx.strict {
            report_unknown(&self.0.unknown, parent, report);
        }
    }
}

/// A string of at most `max` characters without control characters (tabs are allowed).
fn text(value: Value, max: usize) -> Result<Option<String>, Message> {
    let Value::String(s) = value else {
        return Err(Cow::Borrowed("must be a string"));
    };
    if s.trim().is_empty() {
        return Ok(None);
    }
    if s.chars().count() > max {
        return Err(Cow::Owned(format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Cow::Borrowed("must not contain control characters"));
    }
    Ok(Some(s))
}

/// Free text of at most `MAX` characters, kept as sent.
#[derive(Debug)]
pub struct Text<const MAX: usize>(pub String);

impl<const MAX: usize> FieldValue for Text<MAX> {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        Ok(text(value, MAX)?.map(Text))
    }
}

/// Free text, trimmed.
impl<const MAX: usize> Text<MAX> {
    pub fn trimmed(self) -> String {
        self.0.trim().to_owned()
    }
}

/// An id: a UUID in its text form.
impl FieldValue for uuid::Uuid {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        let Some(raw) = text(value, 64)? else {
            return Ok(None);
        };
        uuid::Uuid::parse_str(raw.trim())
            .map(Some)
            .map_err(|_| Cow::Borrowed("must be a UUID"))
    }
}

/// A structure another standard defines (a WebAuthn credential, say), decoded by its own
/// `serde` form.
pub trait Standard: DeserializeOwned {
    /// What it is, for the message when it does not decode: "must be {WHAT}".
    const WHAT: &'static str;
}

/// A field holding a [`Standard`] structure.
#[derive(Debug)]
pub struct Decoded<T>(pub T);

impl<T: Standard> FieldValue for Decoded<T> {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        match value {
            Value::Object(_) => serde_json::from_value(value)
                .map(|v| Some(Decoded(v)))
                .map_err(|_| Cow::Owned(format!("must be {}", T::WHAT))),
            _ => Err(Cow::Borrowed("must be an object")),
        }
    }
}

/// `true` or `false`.
#[derive(Debug)]
pub struct Flag(pub bool);

impl FieldValue for Flag {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        match value {
            Value::Bool(b) => Ok(Some(Flag(b))),
            _ => Err(Cow::Borrowed("must be true or false")),
        }
    }
}

/// A text field with a rule of its own: a length bound, then a check from
/// [`validate`] that may also normalise the value.
pub trait TextRule {
    const MAX: usize;
    fn check(raw: &str) -> Result<String, &'static str>;
}

/// A text field that passed its rule `R`.
#[derive(Debug)]
pub struct Checked<R>(String, PhantomData<R>);

impl<R> Checked<R> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<R: TextRule> FieldValue for Checked<R> {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        let Some(raw) = text(value, R::MAX)? else {
            return Ok(None);
        };
        R::check(&raw)
            .map(|v| Some(Checked(v, PhantomData)))
            .map_err(Cow::Borrowed)
    }
}

/// Declares a text field type checked by a function: the type (an alias of [`Checked`]),
/// its rule, the longest text read before the check (for the rules of [`validate`], a
/// little over the rule's own limit, so that a value slightly too long gets the rule's
/// message), and the check.
macro_rules! text_rule {
    ($(#[$doc:meta])* $name:ident, $rule:ident, $max:expr, $check:path) => {
        $(#[$doc])*
        pub type $name = Checked<$rule>;

        #[derive(Debug)]
        pub struct $rule;

        impl TextRule for $rule {
            const MAX: usize = $max;
            fn check(raw: &str) -> Result<String, &'static str> {
                $check(raw)
            }
        }
    };
}

text_rule!(
    /// A new account's email, normalised by [`validate::email`].
    Email,
    EmailRule,
    validate::EMAIL_MAX + 10,
    validate::email
);

text_rule!(
    /// A new account's user name, checked by [`validate::user_name`].
    UserName,
    UserNameRule,
    validate::USER_NAME_MAX + 10,
    validate::user_name
);

text_rule!(
    /// A phone number, checked by [`validate::phone_number`].
    PhoneNumber,
    PhoneNumberRule,
    validate::PHONE_MAX + 10,
    validate::phone_number
);

/// A password: at most 1024 bytes. Its content is never echoed, logged or printed.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn into_secret(self) -> SecretString {
        self.0
    }

    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl FieldValue for Password {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        const MAX: usize = validate::PASSWORD_MAX_BYTES;
        // Characters are at most 4 bytes: refuse absurd input early, then the byte limit.
        let Some(raw) = text(value, MAX * 4)? else {
            return Ok(None);
        };
        if raw.len() > MAX {
            return Err(Cow::Owned(format!("must be at most {MAX} bytes")));
        }
        Ok(Some(Password(SecretString::from(raw))))
    }
}

/// Longest code read: a backup code with spaces is well under it.
const MAX_CODE: usize = 32;

/// The message of a code that is neither an authenticator code nor a backup code.
const CODE_MESSAGE: &str = "must be 6 or 8 digits or a backup code";

/// A second-factor code: 6 digits from the authenticator, or a backup code.
#[derive(Debug)]
pub struct Code(SecondFactorCode);

impl Code {
    pub fn into_inner(self) -> SecondFactorCode {
        self.0
    }
}

impl FieldValue for Code {
    fn read(value: Value) -> Result<Option<Self>, Message> {
        let Some(raw) = text(value, MAX_CODE)? else {
            return Ok(None);
        };
        SecondFactorCode::parse(&raw)
            .map(|c| Some(Code(c)))
            .ok_or(Cow::Borrowed(CODE_MESSAGE))
    }
}

/// A 6-digit authenticator code only (enrolment confirms the authenticator, not a backup
/// code); 8 digits for an authenticator that makes them.
fn totp_code(raw: &str) -> Result<String, &'static str> {
    match SecondFactorCode::parse(raw) {
        Some(SecondFactorCode::Totp(digits)) => Ok(digits),
        Some(SecondFactorCode::Backup(_)) => Err("must be 6 digits"),
        None => Err(CODE_MESSAGE),
    }
}

/// Exactly 6 digits, nothing around them (the Sapfiai contract's code).
fn exact_totp_code(raw: &str) -> Result<String, &'static str> {
    if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err("must be exactly 6 digits")
    }
}

text_rule!(
    /// An authenticator code, not a backup code (`totp_code`).
    TotpCode,
    TotpCodeRule,
    MAX_CODE,
    totp_code
);

text_rule!(
    /// The Sapfiai contract's code (`exact_totp_code`).
    ExactTotpCode,
    ExactTotpCodeRule,
    MAX_CODE,
    exact_totp_code
);

/// Rule for a new password field: not common or breached, not built on the account's
/// words (from the context, or `email` and `user_name` from the same body).
pub fn new_password_rule(
    password: &Field<Password>,
    email: Option<&Email>,
    user_name: Option<&UserName>,
    ctx: &BodyContext,
) -> garde::Result {
    let Some(password) = password.get() else {
        return Ok(());
    };
    let words = match email {
        Some(email) => {
            validate::password_context(email.as_str(), user_name.map(UserName::as_str), &ctx.issuer)
        }
        None if !ctx.account_words.is_empty() => ctx.account_words.clone(),
        // The email is wrong too: still say what is wrong with the password.
        None => Vec::new(),
    };
    validate::new_password(password.expose(), &words).map_err(Error::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Validate)]
    #[serde(rename_all = "camelCase")]
    #[garde(context(BodyContext))]
    struct Inner {
        #[garde(dive)]
        device_name: Field<Text<5>>,
    }

    #[derive(Deserialize, Validate)]
    #[serde(rename_all = "camelCase")]
    #[garde(context(BodyContext))]
    struct Outer {
        #[garde(dive)]
        code: Field<Code>,
        #[garde(dive)]
        user_name: Optional<UserName>,
        #[garde(dive)]
        enable: Optional<Flag>,
        #[garde(dive)]
        trust_device: Optional<Nested<Inner>>,
    }

    fn check(body: Value, strict: bool) -> Result<Outer, FieldErrors> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        let ctx = BodyContext {
            strict,
            ..BodyContext::default()
        };
        Unchecked::<Outer>::read(map)
            .and_then(|u| u.check(&ctx))
            .map_err(|e| match e {
                AppError::Validation(errors) => errors,
                other => panic!("{other:?}"),
            })
    }

    #[test]
    fn every_field_gets_its_own_message_under_its_wire_name() {
        let errors = check(
            json!({"code": 5, "userName": "a", "enable": "yes",
                   "trustDevice": {"deviceName": "toolong", "extra": 1}, "other": true,
                   "a_b.c": 1}),
            true,
        )
        .err()
        .unwrap();
        let expected: FieldErrors = [
            ("code", "must be a string"),
            ("userName", "must be 3 to 254 characters"),
            ("enable", "must be true or false"),
            ("trustDevice.deviceName", "must be at most 5 characters"),
            ("trustDevice.extra", "is not a known field"),
            ("other", "is not a known field"),
            ("a_b.c", "is not a known field"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
        .collect();
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        for (k, v) in &expected {
            if k != "userName" {
                assert_eq!(&errors[k], v, "{k}");
            }
        }
    }

    #[test]
    fn lenient_bodies_drop_unknown_fields_and_blank_optionals_are_absent() {
        let body = check(json!({"code": "123456", "userName": "  ", "x": 1}), false).unwrap();
        assert!(body.user_name.get().is_none());
        assert!(matches!(
            body.code.into_valid().unwrap().into_inner(),
            SecondFactorCode::Totp(_)
        ));
        assert!(check(json!({"code": "123456", "x": 1}), true).is_err());
    }

    #[test]
    fn a_missing_or_null_required_field_is_required() {
        for body in [json!({}), json!({"code": null}), json!({"code": "   "})] {
            let errors = check(body, true).err().unwrap();
            assert_eq!(errors["code"], vec!["is required".to_owned()]);
        }
    }
}
