#!/usr/bin/env escript
%% P11: gen_server:call: replies (also from outside the handler), timeout with the late reply
%% dropped, noproc for an unknown name or a dead server, the server's exit reason when it
%% dies during the call, stop with and without a reply.
-mode(compile).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-include("trace.hrl").

init(Name) -> {ok, #{name => Name, held => undefined}}.

handle_call(ping, _From, S) -> {reply, pong, S};
handle_call(hold, From, S) -> {noreply, S#{held := From}};
handle_call(later, From, S) -> spawn(fun() -> gen_server:reply(From, from_outside) end),
                               {noreply, S};
handle_call(crash, _From, _S) -> error(boom);
handle_call(stop_silent, _From, S) -> {stop, custom, S};
handle_call(stop_reply, _From, S) -> {stop, normal, bye, S}.

handle_cast(release, S = #{held := From}) ->
    gen_server:reply(From, too_late),
    {noreply, S#{held := undefined}}.

handle_info(_, S) -> {noreply, S}.

terminate(Reason, #{name := Name}) -> trace([Name, terminate, Reason]).

catch_call(S, R, T) ->
    try gen_server:call(S, R, T) catch exit:{Reason, {gen_server, call, _}} -> {exit, Reason} end.

scenario() ->
    {ok, S} = gen_server:start({local, srv}, ?MODULE, srv, []),
    trace([ping, gen_server:call(srv, ping)]),
    trace([forever, gen_server:call(srv, ping, infinity)]),
    trace([later, gen_server:call(S, later)]),
    trace([hold, catch_call(S, hold, 50)]),
    gen_server:cast(S, release),
    trace([ping, gen_server:call(S, ping)]),
    trace([left, flush()]),
    trace([unknown, catch_call(nobody, ping, 1000)]),
    trace([crash, catch_call(S, crash, 1000)]),
    trace([dead, catch_call(S, ping, 1000)]),
    {ok, S2} = gen_server:start(?MODULE, s2, []),
    trace([stop_silent, catch_call(S2, stop_silent, 1000)]),
    {ok, S3} = gen_server:start(?MODULE, s3, []),
    monitor(process, S3),
    trace([stop_reply, catch_call(S3, stop_reply, 1000)]),
    trace([s3, down, wait_down(S3)]),
    trace([left, flush()]).
