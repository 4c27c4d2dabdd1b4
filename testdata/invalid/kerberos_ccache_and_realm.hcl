host "web1" {
  address = "web1.corp.example"
  winrm {
    auth   = "kerberos"
    ccache = "KEYRING:persistent:1000"
    realm  = "corp.example"
  }
}

host "web2" {
  address = "web2.corp.example"
  winrm {
    auth     = "kerberos"
    user     = "deploy@CORP.EXAMPLE"
    realm    = "CORP.EXAMPLE"
    password = var.pw
    ccache   = "/tmp/krb5cc_gsd"
    spn      = "web2.corp.example"
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}
# ERROR: 5:14 Ticket cache not in a file
# WARNING: 6:14 Realm not in capitals
# ERROR: 6:14 realm without user
# ERROR: 15:16 Realm given twice
# ERROR: 17:16 ccache with a login
# ERROR: 18:16 Invalid spn
