//! DRF-style page-number pagination: `?page=&page_size=` in, `{count, next,
//! previous, results}` out, with `next`/`previous` as the request's own path
//! and query with only `page` changed. [`from_store`] serves the same shape from one store query
//! per page, with cursors in `next`/`previous` (`?cursor=`, `?before=`), for lists that grow
//! without bound.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, Request, Response, Result, ok, query_param};
use base64::Engine;

use crate::platform::store::{Index, Item, Query, SkCond, Store, StoreError, Value, from_item};

/// A page the client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// 1-based.
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// `?page=` (default 1) and `?page_size=` (default `default_size`, at most `max_size`); 400 naming the parameter.
    pub fn from_query(req: &Request, default_size: usize, max_size: usize) -> Result<Page> {
        let number = match query_param(req, "page") {
            None | Some("") => 1,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| ApiError::invalid_field("page", "invalid_page", "Invalid page."))?,
        };
        let size = match query_param(req, "page_size") {
            None | Some("") => default_size,
            Some(s) => s.parse::<usize>().ok().filter(|s| *s >= 1).map(|s| s.min(max_size)).ok_or_else(|| {
                ApiError::invalid_field("page_size", "invalid_page_size", "page_size must be a positive integer.")
            })?,
        };
        Ok(Page { number, size })
    }
}

#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    pub count: usize,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

impl<T> Paginated<T> {
    /// The same page with each result turned into what the API shows.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paginated<U> {
        Paginated {
            count: self.count,
            next: self.next,
            previous: self.previous,
            results: self.results.into_iter().map(f).collect(),
        }
    }
}

/// The request's path and query with `page` set to `number`.
fn page_url(req: &Request, number: usize) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if k != "page" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("page", &number.to_string());
    format!("{}?{}", req.uri().path(), query.finish())
}

/// One page of `items`; a page past the end (other than the first) is 404.
pub fn paginate<T>(req: &Request, items: Vec<T>, page: Page) -> Result<Paginated<T>> {
    let count = items.len();
    let start = (page.number - 1).saturating_mul(page.size);
    if start >= count && page.number > 1 {
        return Err(ApiError::not_found("not_found", "Invalid page."));
    }
    let results: Vec<T> = items.into_iter().skip(start).take(page.size).collect();
    Ok(Paginated {
        count,
        next: (start + page.size < count).then(|| page_url(req, page.number + 1)),
        previous: (page.number > 1).then(|| page_url(req, page.number - 1)),
        results,
    })
}

/// 200 with one page of `items`.
pub fn respond<T: Serialize>(req: &Request, items: Vec<T>, page: Page) -> Result<Response> {
    ok(&paginate(req, items, page)?)
}

/// SmartLock's page (seed 003 `CustomPagination`): DRF's plus `total_pages` and `current_page`.
#[derive(Debug, Serialize)]
pub struct NumberedPage<T> {
    pub count: usize,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub total_pages: usize,
    pub current_page: usize,
    pub results: Vec<T>,
}

/// 200 with one page of `items` in SmartLock's shape.
pub fn respond_numbered<T: Serialize>(req: &Request, items: Vec<T>, page: Page) -> Result<Response> {
    let p = paginate(req, items, page)?;
    let total_pages = p.count.div_ceil(page.size).max(1);
    ok(&NumberedPage {
        count: p.count,
        next: p.next,
        previous: p.previous,
        total_pages,
        current_page: page.number,
        results: p.results,
    })
}

// ------------------------------------------------------------- store-paged

/// Items a `?page=N` request may skip: past them, a client follows `next`/`previous` (cursors).
pub const MAX_PAGE_OFFSET: usize = 1000;

/// Where a store-paged list starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// `?page=N` alone: the first `N × size` items are read and the last `size` shown (N × size at
    /// most [`MAX_PAGE_OFFSET`] + size).
    Number,
    /// `?cursor=`: the items right after the one the cursor names (a `next` link).
    After(String),
    /// `?before=`: the items right before it (a `previous` link).
    Before(String),
}

/// A store-paged request: the page (number and size) and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub page: Page,
    pub position: Position,
}

impl Keyset {
    /// `?page=&page_size=` as [`Page::from_query`], plus `?cursor=` or `?before=` (not both); 400
    /// naming the parameter.
    pub fn from_query(req: &Request, default_size: usize, max_size: usize) -> Result<Keyset> {
        let page = Page::from_query(req, default_size, max_size)?;
        let cursor = query_param(req, "cursor").filter(|c| !c.is_empty());
        let before = query_param(req, "before").filter(|c| !c.is_empty());
        let bad = |field: &str| ApiError::invalid_field(field, "invalid_cursor", format!("Invalid {field}."));
        for (field, value) in [("cursor", cursor), ("before", before)] {
            if value.is_some_and(|v| v.len() > 2048) {
                return Err(bad(field));
            }
        }
        let position = match (cursor, before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_field("before", "invalid_cursor", "Give cursor or before, not both."));
            }
            (Some(c), None) => Position::After(c.to_string()),
            (None, Some(b)) => Position::Before(b.to_string()),
            (None, None) => {
                if (page.number - 1).saturating_mul(page.size) > MAX_PAGE_OFFSET {
                    return Err(ApiError::invalid_field(
                        "page",
                        "page_too_deep",
                        format!("Pages past item {MAX_PAGE_OFFSET} are reached by following next."),
                    ));
                }
                Position::Number
            }
        };
        Ok(Keyset { page, position })
    }
}

/// The request's path and query with `page` set to `number` and the cursor parameters replaced.
fn keyset_url(req: &Request, number: usize, cursor: Option<(&str, &str)>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        if k != "page" && k != "cursor" && k != "before" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("page", &number.to_string());
    if let Some((name, value)) = cursor {
        query.append_pair(name, value);
    }
    format!("{}?{}", req.uri().path(), query.finish())
}

/// The sort-key range of a list's query, from its sort-key condition (`None`: unbounded).
fn sk_range(cond: Option<&SkCond>) -> std::result::Result<(Option<String>, Option<String>), ApiError> {
    Ok(match cond {
        None => (None, None),
        // Every string that starts with the prefix sorts at most at the prefix and U+10FFFF.
        Some(SkCond::BeginsWith(prefix)) => (Some(prefix.clone()), Some(format!("{prefix}{}", char::MAX))),
        Some(SkCond::Between(low, high)) => (Some(low.clone()), Some(high.clone())),
        Some(SkCond::Ge(low)) => (Some(low.clone()), None),
        Some(SkCond::Le(high)) => (None, Some(high.clone())),
        Some(other) => return Err(ApiError::internal(anyhow::anyhow!("a store-paged list cannot use {other:?}"))),
    })
}

/// The condition for a sort key within `low..=high`.
fn sk_cond(low: Option<String>, high: Option<String>) -> Option<SkCond> {
    match (low, high) {
        (None, None) => None,
        (Some(low), None) => Some(SkCond::Ge(low)),
        (None, Some(high)) => Some(SkCond::Le(high)),
        (Some(low), Some(high)) => Some(if low == high { SkCond::Eq(low) } else { SkCond::Between(low, high) }),
    }
}

/// The sort key of `item` on `index`, the boundary a cursor names.
fn sort_key(item: &Item, index: Index) -> Option<&str> {
    match item.get(index.attributes().1) {
        Some(Value::S(sk)) => Some(sk),
        _ => None,
    }
}

/// A cursor: the list's first partition and the boundary's sort key, as a JSON pair in base64url,
/// so that a cursor of one list is refused by another.
fn encode_cursor(list: &str, sk: &str) -> String {
    let json = serde_json::to_vec(&(list, sk)).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The boundary's sort key, when `cursor` is one of `list`'s.
fn decode_cursor(list: &str, cursor: &str) -> Option<String> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let (of, sk): (String, String) = serde_json::from_slice(&json).ok()?;
    (of == list && !sk.is_empty()).then_some(sk)
}

/// Up to `need` items of one partition that `query` reads in order (`descending` as given), past
/// `boundary` (exclusive), with as many store requests as its filter makes necessary; `None` when
/// the boundary lies outside the partition's sort-key range (a cursor of another list).
async fn read_partition(
    store: &Store,
    query: &Query,
    descending: bool,
    boundary: Option<&str>,
    need: usize,
) -> Result<Option<Vec<Item>>> {
    let (mut low, mut high) = sk_range(query.sk.as_ref())?;
    if let Some(b) = boundary {
        let below = low.as_deref().is_some_and(|low| b < low);
        let above = high.as_deref().is_some_and(|high| b > high);
        if below || above {
            return Ok(None);
        }
        // Inclusive, so the boundary item itself is read and dropped below.
        if descending { high = Some(b.to_string()) } else { low = Some(b.to_string()) }
    }
    let mut q = query.clone().after(None);
    q.sk = sk_cond(low, high);
    q.descending = descending;
    let index = q.index;
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let limit = u32::try_from(need.saturating_sub(items.len()) + 1).unwrap_or(u32::MAX);
        let page = store.query(q.clone().after(cursor).limit(limit)).await?;
        items.extend(page.items.into_iter().filter(|item| boundary.is_none() || sort_key(item, index) != boundary));
        cursor = page.cursor;
        if items.len() >= need || cursor.is_none() {
            items.truncate(need);
            return Ok(Some(items));
        }
    }
}

/// One page of a list read from the store, in the page shape `{count, next, previous, results}`.
///
/// The list is the items of `queries` (partitions of one index, read in one direction, each with
/// unique sort keys; several are merged by sort key), filtered by their filters. Each partition is
/// read up to `size + 1` items past the cursor (`N × size + 1` for `?page=N`), so a page costs one
/// store query per partition (more when a filter drops items), whatever the list holds. `next` and
/// `previous` carry the sort key of the page's last or first item as the cursor, with the list's
/// first partition key so that a cursor of one list is 400 in another. `count` is `known`
/// (a counter kept with the items) or else counted in the store ([`Store::count`], skipped when
/// the first page holds the whole list). A bad cursor is 400 naming it; a page number past the end
/// (other than 1) is 404.
pub async fn from_store<T: DeserializeOwned>(
    store: &Store,
    req: &Request,
    queries: Vec<Query>,
    keyset: &Keyset,
    known: Option<usize>,
) -> Result<Paginated<T>> {
    let Page { number, size } = keyset.page;
    let Some(first) = queries.first() else {
        return Ok(Paginated { count: 0, next: None, previous: None, results: Vec::new() });
    };
    let (index, descending) = (first.index, first.descending);
    if queries.iter().any(|q| q.index != index || q.descending != descending) {
        return Err(ApiError::internal(anyhow::anyhow!("a store-paged list reads one index in one direction")));
    }
    let field = if matches!(keyset.position, Position::Before(_)) { "before" } else { "cursor" };
    let bad_cursor = || ApiError::invalid_field(field, "invalid_cursor", format!("Invalid {field}."));
    let list = first.pk.clone();
    let decode = |cursor: &str| decode_cursor(&list, cursor).ok_or_else(bad_cursor);
    let (boundary, reverse, need) = match &keyset.position {
        Position::Number => (None, false, number * size + 1),
        Position::After(c) => (Some(decode(c)?), false, size + 1),
        Position::Before(c) => (Some(decode(c)?), true, size + 1),
    };
    // The order the partitions are read in: the list's, or backwards from a `before` cursor.
    let read_descending = descending != reverse;
    let mut items = Vec::new();
    for query in &queries {
        let part = read_partition(store, query, read_descending, boundary.as_deref(), need).await?;
        items.extend(part.ok_or_else(bad_cursor)?);
    }
    if queries.len() > 1 {
        let key = |item: &Item| sort_key(item, index).map(str::to_string);
        items.sort_by_key(key);
        if read_descending {
            items.reverse();
        }
        items.truncate(need);
    }
    // (items in list order, whether items come before them, whether items come after them)
    let (items, more_before, more_after) = match &keyset.position {
        Position::Number => {
            let offset = (number - 1) * size;
            let more_after = items.len() > offset + size;
            items.truncate(offset + size);
            let items: Vec<Item> = items.into_iter().skip(offset).collect();
            if items.is_empty() && number > 1 {
                return Err(ApiError::not_found("not_found", "Invalid page."));
            }
            (items, number > 1, more_after)
        }
        Position::After(_) => {
            let more_after = items.len() > size;
            items.truncate(size);
            (items, true, more_after)
        }
        Position::Before(_) => {
            let more_before = items.len() > size;
            items.truncate(size);
            items.reverse();
            (items, more_before, true)
        }
    };
    let first = items.first().and_then(|i| sort_key(i, index)).map(|sk| encode_cursor(&list, sk));
    let last = items.last().and_then(|i| sort_key(i, index)).map(|sk| encode_cursor(&list, sk));
    let next = match (&last, more_after) {
        (Some(last), true) => Some(keyset_url(req, number + 1, Some(("cursor", last)))),
        _ => None,
    };
    let previous = match (&first, more_before, &keyset.position) {
        // Within the first pages a page number is as good as a cursor, and reads as one.
        (_, true, Position::Number) => Some(keyset_url(req, number - 1, None)),
        (Some(first), true, _) => Some(keyset_url(req, number.saturating_sub(1).max(1), Some(("before", first)))),
        _ => None,
    };
    let count = match known {
        Some(count) => count,
        // The first page holds the whole list.
        None if number == 1 && keyset.position == Position::Number && !more_after => items.len(),
        None => {
            let mut count = 0;
            for query in queries {
                count += store.count(query).await?;
            }
            count
        }
    };
    let results = items.into_iter().map(from_item).collect::<std::result::Result<Vec<T>, StoreError>>()?;
    Ok(Paginated { count, next, previous, results })
}
