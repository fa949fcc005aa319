# Copyright (c) lifecycle authors
#
# Helpers for lifecycle's message TAP tests (test/t/2NN_*.pl): a preloaded
# node, and the local sinks of test/sinks/ started on loopback ports and
# stopped again.
package LifecycleSinks;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Basename qw(dirname);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use MIME::Base64 ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(lc_node start_webhook_sink start_smtp_sink start_otlp_sink
  lc_secret wait_until);

my $sinks_dir = dirname(__FILE__);
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';

# A webhook secret as Standard Webhooks writes it (32 fixed key bytes).
sub lc_secret
{
	return 'whsec_'
	  . MIME::Base64::encode_base64('lifecycle-test-key-0123456789abc', '');
}

# A started node with the library preloaded and the extension created in
# "postgres"; extra lines go to postgresql.conf.
sub lc_node
{
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', join("\n",
			"shared_preload_libraries = 'lifecycle'",
			"lifecycle.database = 'postgres'",
			"lifecycle.allow_time_travel = on",
			"lifecycle.allow_private_targets = on",
			@conf, ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION lifecycle');
	return $node;
}

# Poll code until it returns true, at most $secs seconds (default 60).
sub wait_until
{
	my ($code, $secs) = @_;
	$secs //= 60;
	my $deadline = time() + $secs;
	while (time() < $deadline)
	{
		return 1 if $code->();
		usleep(100_000);
	}
	return $code->() ? 1 : 0;
}

# Run a sink script; returns when it has written the port it listens on.
sub _start
{
	my ($script, $dir, @args) = @_;
	my $port_file = "$dir/port";
	unlink $port_file;
	my $h = IPC::Run::start([ $python, "$sinks_dir/$script", '--port-file',
			$port_file, @args ],
		'>', "$dir/stdout", '2>', "$dir/stderr");
	wait_until(sub { -s $port_file }, 30)
	  or die "sink $script did not start: " . slurp_file("$dir/stderr");
	my $port = slurp_file($port_file);
	chomp $port;
	return ($h, $port);
}

# Start the webhook sink: secret, mode (ok), port (0: any), delay,
# redirect_to.
sub start_webhook_sink
{
	my (%o) = @_;
	my $dir = $o{dir} // PostgreSQL::Test::Utils::tempdir();
	my @args = ('--log', "$dir/hooks.jsonl", '--mode', $o{mode} // 'ok',
		'--port', $o{port} // 0);
	push @args, '--secret', $o{secret} if defined $o{secret};
	push @args, '--delay', $o{delay} if defined $o{delay};
	push @args, '--redirect-to', $o{redirect_to} if defined $o{redirect_to};
	my ($h, $port) = _start('webhook_sink.py', $dir, @args);
	return bless {
		handle => $h,
		dir => $dir,
		port => $port,
		log => "$dir/hooks.jsonl",
		url => "http://127.0.0.1:$port/hook",
		opts => \%o,
	}, 'LifecycleSinks::Webhook';
}

# Start the SMTP sink; messages go to its dir.
sub start_smtp_sink
{
	my (%o) = @_;
	my $dir = $o{dir} // PostgreSQL::Test::Utils::tempdir();
	my $mail = "$dir/mail";
	mkdir $mail;
	my ($h, $port) = _start('smtp_sink.py', $dir, '--dir', $mail);
	return bless {
		handle => $h,
		dir => $dir,
		mail => $mail,
		port => $port,
		url => "smtp://127.0.0.1:$port",
	}, 'LifecycleSinks::Smtp';
}

# Start the OTLP/HTTP trace receiver: mode (ok), status, retry_after,
# port (0: any).  Its endpoint (for lifecycle.otel_endpoint) is {url}.
sub start_otlp_sink
{
	my (%o) = @_;
	my $dir = $o{dir} // PostgreSQL::Test::Utils::tempdir();
	my @args = ('--log', "$dir/otlp.jsonl", '--mode', $o{mode} // 'ok',
		'--port', $o{port} // 0);
	push @args, '--status', $o{status} if defined $o{status};
	push @args, '--retry-after', $o{retry_after} if defined $o{retry_after};
	my ($h, $port) = _start('otlp_sink.py', $dir, @args);
	return bless {
		handle => $h,
		dir => $dir,
		port => $port,
		log => "$dir/otlp.jsonl",
		url => "http://127.0.0.1:$port",
		opts => \%o,
	}, 'LifecycleSinks::Otlp';
}

package LifecycleSinks::Base;

sub stop
{
	my ($self) = @_;
	return unless $self->{handle};
	$self->{handle}->kill_kill(grace => 5);
	delete $self->{handle};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local $@;
	eval { $self->stop };
	return;
}

package LifecycleSinks::Webhook;
our @ISA = ('LifecycleSinks::Base');

# Start it again on the same port with the same options (after stop).
sub restart
{
	my ($self, %o) = @_;
	my $new = LifecycleSinks::start_webhook_sink(%{ $self->{opts} },
		dir => $self->{dir}, port => $self->{port}, %o);
	$self->{handle} = delete $new->{handle};
	return $self;
}

# Change how it answers: mode => ok|fail|gone|hang|slow|redirect, delay,
# redirect_to.
sub control
{
	my ($self, %cmd) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->post(
		"http://127.0.0.1:$self->{port}/_control",
		{ content => JSON::PP::encode_json(\%cmd) });
	die "sink control failed: $r->{status}" unless $r->{success};
	return;
}

# Every request it received, as hashes (id, timestamp, valid, type,
# body_id, data, status, mode).
sub records
{
	my ($self) = @_;
	return () unless -e $self->{log};
	open my $fh, '<', $self->{log} or die "open $self->{log}: $!";
	my @r;
	while (my $line = <$fh>)
	{
		next unless $line =~ /\}\s*$/;
		push @r, JSON::PP::decode_json($line);
	}
	close $fh;
	return @r;
}

# Ids of requests it accepted (2xx) with a valid signature.
sub ok_ids
{
	my ($self) = @_;
	my %ids = map { $_->{id} => 1 }
	  grep { $_->{valid} && $_->{status} >= 200 && $_->{status} < 300 }
	  $self->records;
	return sort { $a <=> $b } keys %ids;
}

package LifecycleSinks::Otlp;
our @ISA = ('LifecycleSinks::Base');

# Change how it answers: mode => ok|partial|status|hang, status, retry_after,
# queue => [statuses answered first], rejected.
sub control
{
	my ($self, %cmd) = @_;
	my $r = HTTP::Tiny->new(timeout => 10)->post(
		"http://127.0.0.1:$self->{port}/_control",
		{ content => JSON::PP::encode_json(\%cmd) });
	die "sink control failed: $r->{status}" unless $r->{success};
	return;
}

# Start it again on the same port with the same options (after stop).
sub restart
{
	my ($self, %o) = @_;
	my $new = LifecycleSinks::start_otlp_sink(%{ $self->{opts} },
		dir => $self->{dir}, port => $self->{port}, %o);
	$self->{handle} = delete $new->{handle};
	return $self;
}

# Every request it received: { at, path, mode, status, headers, body, raw }.
sub requests
{
	my ($self) = @_;
	return () unless -e $self->{log};
	open my $fh, '<', $self->{log} or die "open $self->{log}: $!";
	my @r;
	while (my $line = <$fh>)
	{
		next unless $line =~ /\}\s*$/;
		push @r, JSON::PP::decode_json($line);
	}
	close $fh;
	return @r;
}

# The spans of the requests it accepted (2xx), each with its resource's
# attributes as {resource}.
sub spans
{
	my ($self) = @_;
	my @s;
	for my $r (grep { $_->{status} >= 200 && $_->{status} < 300 } $self->requests)
	{
		for my $rs (@{ $r->{body}{resourceSpans} // [] })
		{
			for my $ss (@{ $rs->{scopeSpans} // [] })
			{
				for my $sp (@{ $ss->{spans} // [] })
				{
					$sp->{resource} = $rs->{resource};
					push @s, $sp;
				}
			}
		}
	}
	return @s;
}

# A span's attributes as a flat hash (string and int values).
sub attrs
{
	my ($span) = @_;
	my %a;
	for my $kv (@{ $span->{attributes} // [] })
	{
		my $v = $kv->{value};
		$a{ $kv->{key} } = $v->{stringValue} // $v->{intValue}
		  // $v->{boolValue} // $v->{doubleValue};
	}
	return \%a;
}

package LifecycleSinks::Smtp;
our @ISA = ('LifecycleSinks::Base');

# Every message received: { file, mail_from, rcpt_tos, raw }.
sub messages
{
	my ($self) = @_;
	my $index = "$self->{mail}/messages.jsonl";
	return () unless -e $index;
	open my $fh, '<', $index or die "open $index: $!";
	my @m;
	while (my $line = <$fh>)
	{
		next unless $line =~ /\}\s*$/;
		my $m = JSON::PP::decode_json($line);
		$m->{raw} = PostgreSQL::Test::Utils::slurp_file("$self->{mail}/$m->{file}");
		push @m, $m;
	}
	close $fh;
	return @m;
}

1;
