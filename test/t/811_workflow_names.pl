# The user lifecycle is data (issue 17): no C file outside the user
# workflow's named API wrappers (lifecycle_invite() and friends, adopt)
# names one of its states, events, messages or intervals, as a string
# literal or as a C constant of 0.2.0's enums.  The engine knows only the
# compiled graph.  ("touch" is also an effect of the workflow language and
# "erase"/"erased" are reserved in every workflow, so they are allowed.)
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Find;
use Test::More;

my $src = dirname(__FILE__) . '/../../src';
my @names = qw(invited active dormant completed archived expired
  invite register complete archive restore invite_reminder expire
  archive_reminder archive_due erase_due archive_notice restored
  invite_reminders invite_expires_after dormant_after archive_after
  archive_reminders erase_after expired_erase_after);
my $alt = join('|', @names);
my $literal = qr/["']($alt)["']/;
my $enum = qr/\bLC_(INVITED|ACTIVE|DORMANT|COMPLETED|ARCHIVED|EXPIRED
  |EV_(INVITE|REGISTER|TOUCH|COMPLETE|ARCHIVE|RESTORE|INVITE_REMINDER|EXPIRE
  |DORMANT|ARCHIVE_REMINDER|ARCHIVE_DUE|ERASE_DUE)
  |MSG_(INVITE|INVITE_REMINDER|ARCHIVE_NOTICE|ARCHIVE_REMINDER|ARCHIVED|RESTORED)
  |IV_\w+|RM_\w+|HOOK_(ARCHIVE|RESTORE|ERASE))\b/x;

# The user workflow's own SQL-callable wrappers may name its events and
# states.  Its SMTP templates are sql/workflows/user.json's: the sender
# reads them from the compiled graph.
my %allowed = map { $_ => 1 } qw(api/api_app.c api/api_admin.c api/adopt.c);

my @found;
my $files = 0;
find(
	sub {
		return unless /\.[ch]$/;
		my $rel = $File::Find::name;
		$rel =~ s{^\Q$src\E/}{};
		$files++;
		return if $allowed{$rel};
		open(my $fh, '<', $_) or die "cannot read $File::Find::name: $!";
		while (my $line = <$fh>)
		{
			push @found, "$rel:$.: $1" if $line =~ $literal || $line =~ $enum;
		}
		close $fh;
	},
	$src);

cmp_ok($files, '>', 20, 'the C sources were found');
is(join("\n", @found), '',
	'no C file outside the API wrappers names the user workflow');

# The check itself can fail: a line naming a state is caught.
ok('x = "dormant";' =~ $literal, 'a state literal is caught');
ok('LC_EV_ARCHIVE_DUE' =~ $enum, 'an old enum constant is caught');

done_testing();
