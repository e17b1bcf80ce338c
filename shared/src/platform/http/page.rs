//! DRF-style page-number pagination: `?page=&page_size=` in, `{count, next,
//! previous, results}` out, with `next`/`previous` as the request's own path
//! and query with only `page` changed.

use serde::Serialize;

use super::{ApiError, Request, Response, Result, ok, query_param};

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
