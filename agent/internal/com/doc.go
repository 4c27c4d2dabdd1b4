// Package com is what the agent's COM clients (the Task Scheduler's, the
// firewall's) share: a thread of their own with COM initialised for each
// use, and their failures named by HRESULT, in words that do not depend
// on FormatMessage, which has no text for many of them (and under Wine
// for fewer still).
package com
