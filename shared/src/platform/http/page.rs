//! DRF-style page-number pagination: `?page=&page_size=` in, `{count, next,
//! previous, results}` out, with `next`/`previous` as the request's own path
//! and query with only `page` changed. [`from_store`] serves the same shape from one store query
//! per page, with cursors in `next`/`previous` (`?cursor=`, `?before=`), for lists that grow
//! without bound.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ApiError, Request, Response, Result, ok, query_param};
use crate::platform::store::{Item, Query, Store, StoreError, cursor_at, from_item};

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

/// One page of `query` read from the store (one query of at most `size + 1` items, or of the first
/// `N × size + 1` for `?page=N`), in the page shape `{count, next, previous, results}`: `count` is
/// what the caller knows the list holds (a counter kept with the items), `next` and `previous`
/// carry cursors. A bad cursor is 400 naming it; a page number past the end (other than 1) is 404.
pub async fn from_store<T: DeserializeOwned>(
    store: &Store,
    req: &Request,
    query: Query,
    keyset: &Keyset,
    count: usize,
) -> Result<Paginated<T>> {
    let Page { number, size } = keyset.page;
    let index = query.index;
    let bad_cursor = |field: &'static str| {
        move |e: StoreError| match e {
            StoreError::BadCursor => ApiError::invalid_field(field, "invalid_cursor", format!("Invalid {field}.")),
            e => e.into(),
        }
    };
    let limit = |n: usize| u32::try_from(n + 1).unwrap_or(u32::MAX);
    // (items in list order, whether items come before them, whether items come after them)
    let (items, more_before, more_after) = match &keyset.position {
        Position::Number => {
            let offset = (number - 1) * size;
            let page = store.query(query.limit(limit(offset + size))).await?;
            let mut items = page.items;
            let more_after = items.len() > offset + size;
            items.truncate(offset + size);
            let items: Vec<Item> = items.into_iter().skip(offset).collect();
            if items.is_empty() && number > 1 {
                return Err(ApiError::not_found("not_found", "Invalid page."));
            }
            (items, number > 1, more_after)
        }
        Position::After(cursor) => {
            let page = store
                .query(query.after(Some(cursor.clone())).limit(limit(size)))
                .await
                .map_err(bad_cursor("cursor"))?;
            let mut items = page.items;
            let more_after = items.len() > size;
            items.truncate(size);
            (items, true, more_after)
        }
        Position::Before(cursor) => {
            let mut reverse = query.after(Some(cursor.clone())).limit(limit(size));
            reverse.descending = !reverse.descending;
            let page = store.query(reverse).await.map_err(bad_cursor("before"))?;
            let mut items = page.items;
            let more_before = items.len() > size;
            items.truncate(size);
            items.reverse();
            (items, more_before, true)
        }
    };
    let first = items.first().and_then(|i| cursor_at(i, index));
    let last = items.last().and_then(|i| cursor_at(i, index));
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
    let results = items.into_iter().map(from_item).collect::<std::result::Result<Vec<T>, StoreError>>()?;
    Ok(Paginated { count, next, previous, results })
}
